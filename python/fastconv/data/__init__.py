"""Data helpers for training loops (hand-written or `fit`): batches with a seeded shuffle and Keras'
validation split (batching.py), Keras' ImageDataGenerator (augment.py) and loaders for data sets
already on disk (datasets.py: MNIST, Fashion-MNIST, CIFAR-10, image folders, the digits)."""

from __future__ import annotations

from .augment import ArrayIterator, DirectoryIterator, ImageDataGenerator
from .batching import batches, validation_split
from .datasets import load_cifar10, load_digits, load_fashion_mnist, load_image_folder, load_images, load_mnist

__all__ = [
    "batches",
    "validation_split",
    "ImageDataGenerator",
    "ArrayIterator",
    "DirectoryIterator",
    "load_mnist",
    "load_fashion_mnist",
    "load_cifar10",
    "load_image_folder",
    "load_images",
    "load_digits",
]
