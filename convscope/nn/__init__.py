"""Layers (PyTorch names, NCHW layout): each holds its parameters and calls ``functional``."""

from . import init
from .conv import Conv2d, ConvTranspose2d
from .layers import (
                     BatchNorm2d,
                     BCEWithLogitsLoss,
                     CrossEntropyLoss,
                     Dropout,
                     Flatten,
                     HuberLoss,
                     LeakyReLU,
                     Linear,
                     MSELoss,
                     ReLU,
                     Sigmoid,
                     SmoothL1Loss,
                     Softmax,
                     Tanh,
)
from .module import LAYERS, Module, Parameter, Sequential, eval_mode, new_array, size_limit
from .pooling import AdaptiveAvgPool2d, AvgPool2d, LPPool2d, MaxPool2d
from .upsampling import Upsample

__all__ = [
    "Module", "Parameter", "Sequential", "LAYERS", "eval_mode", "init", "size_limit", "new_array",
    "Conv2d", "ConvTranspose2d", "Upsample", "MaxPool2d", "AvgPool2d", "LPPool2d", "AdaptiveAvgPool2d",
    "Linear", "Flatten", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax",
    "Dropout", "BatchNorm2d", "CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss", "HuberLoss", "SmoothL1Loss",
]
