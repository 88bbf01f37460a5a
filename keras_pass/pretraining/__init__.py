from keras_pass.errors import NonFiniteLossError
from keras_pass.finite import NonFiniteLossGuard
from keras_pass.pretraining.data import make_pass_dataset
from keras_pass.pretraining.loss import pass_loss, update_centers
from keras_pass.pretraining.optimizer import ScheduledAdamW
from keras_pass.pretraining.schedules import PASSSchedules, cosine_schedule, pass_schedules
from keras_pass.pretraining.trainer import PASSPretrainer
