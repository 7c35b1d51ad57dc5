"""Built-in models by name, as PyTorch modules with their preprocessing.

``edgekit zoo`` lists them; ``load_zoo_model(name, **options)`` builds one. Pretrained weights come
only from the local cache (``$EDGEKIT_HOME``), never from the network.
"""

from edgekit.zoo.registry import (ZOO, ZooModel, check_resolution, load_zoo_model, zoo_entry,
                                   zoo_model_from_state_dict)

__all__ = ["ZOO", "ZooModel", "check_resolution", "load_zoo_model", "zoo_entry",
           "zoo_model_from_state_dict"]
