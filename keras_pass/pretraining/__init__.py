from keras_pass.pretraining.data import make_pass_dataset
