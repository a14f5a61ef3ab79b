"""Serving images: the local counterparts of ECR images. A model's container `Image` names one.

`IMAGES` maps the names a ContainerDefinition's `Image` may carry to the class that serves it.
An image name may carry a tag or a registry path, as ECR names do; only the last path part
before the tag counts, so `sklearn`, `local/sklearn:1.5` and
`123456789012.dkr.ecr.eu-west-1.amazonaws.com/sklearn:latest` all name the sklearn image.
"""

from runtime.images.base import Image, ModelError


def image_class(image: str) -> type[Image]:
    """The class serving `image`, or a ValueError that lists the images there are."""
    from runtime.images.python import PythonImage
    from runtime.images.sklearn import SklearnImage

    images: dict[str, type[Image]] = {"sklearn": SklearnImage, "python": PythonImage}
    try:
        from runtime.images.llm import LlmImage

        images["llm"] = LlmImage
    except ImportError:  # llama-cpp-python is optional (requirements-llm.txt)
        pass
    name = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    if name not in images:
        known = ", ".join(sorted(images))
        raise ValueError(f"Unknown serving image {image!r}. The local runtime serves: {known}.")
    return images[name]


__all__ = ["Image", "ModelError", "image_class"]
