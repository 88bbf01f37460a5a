from keras_pass.pretraining.callbacks import (
    FreezeLastLayer,
    LearningRateWarmupCosine,
    TeacherMomentumScheduler,
    TeacherTemperatureScheduler,
    WeightDecayScheduler,
    cosine_schedule,
    pass_schedules,
)
from keras_pass.pretraining.data import make_pass_dataset
from keras_pass.pretraining.loss import pass_loss, update_centers
from keras_pass.pretraining.optimizer import ScheduledAdamW
from keras_pass.pretraining.trainer import PASSPretrainer
