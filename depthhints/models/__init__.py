"""Networks: ResNet encoder, depth decoder, pose networks and their geometric helpers."""

from depthhints.models.checkpoint import encoder_checkpoint, filter_state_dict
from depthhints.models.decoder import Conv3x3, ConvBlock, DepthDecoder, disp_to_depth
from depthhints.models.depth_net import DepthNet, LoadedDepthNet, infer_num_layers, load_depth_net
from depthhints.models.encoder import (
    INPUT_MEAN,
    INPUT_STD,
    ResnetEncoder,
    build_resnet,
    default_weights_path,
    load_imagenet_state_dict,
    tile_conv1_weight,
    weights_file_name,
)
from depthhints.models.pose import (
    PoseCNN,
    PoseDecoder,
    get_translation_matrix,
    rot_from_axisangle,
    scale_posecnn_translation,
    transformation_from_parameters,
)

__all__ = [
    "INPUT_MEAN",
    "INPUT_STD",
    "Conv3x3",
    "ConvBlock",
    "DepthDecoder",
    "DepthNet",
    "LoadedDepthNet",
    "PoseCNN",
    "PoseDecoder",
    "ResnetEncoder",
    "build_resnet",
    "default_weights_path",
    "disp_to_depth",
    "encoder_checkpoint",
    "filter_state_dict",
    "get_translation_matrix",
    "infer_num_layers",
    "load_depth_net",
    "load_imagenet_state_dict",
    "rot_from_axisangle",
    "scale_posecnn_translation",
    "tile_conv1_weight",
    "transformation_from_parameters",
    "weights_file_name",
]
