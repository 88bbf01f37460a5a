from keras_pass.models.backbone import PASSBackbone
from keras_pass.models.configs import ARCHITECTURES, arch_config
from keras_pass.models.pos_embed import resample_pos_embed
from keras_pass.models.preset_io import list_presets
