"""mixrt - Python bindings for the mixrt inference compiler/runtime (ctypes over
libmixrt.so; no compiled extension). See Engine for the API and mixrt.torch for PyTorch.
The library is found through $MIXRT_LIBRARY, then the source tree's build/, then the
system loader."""
from ._lib import path as library_path
from .engine import Engine, MixrtError, TensorInfo, version

__version__ = "0.1.0"
__all__ = ["Engine", "MixrtError", "TensorInfo", "version", "library_path", "__version__"]
