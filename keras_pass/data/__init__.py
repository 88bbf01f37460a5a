from keras_pass.data.images import (
    IMAGE_EXTENSIONS,
    SkippedImages,
    decode_image,
    list_image_files,
    read_image,
    read_list_file,
)
