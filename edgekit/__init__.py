"""edgekit: turn a trained CNN into verified int8 firmware for Cortex-M microcontrollers."""

__version__ = "0.1.0"
