"""Taking a model out of the lab: exports, an embedder, gallery search."""

from keras_pass.deploy.embedder import Embedder
from keras_pass.deploy.gallery import GalleryIndex, build_index
from keras_pass.deploy.export import FORMATS, export_feature_extractor, feature_extractor

__all__ = ["Embedder", "FORMATS", "GalleryIndex", "build_index", "export_feature_extractor", "feature_extractor"]
