"""The embedded Image v2 service (a compact Glance).

Image records live in the shared database; image data in a
:class:`~stratus.image.store.FileStore` directory. The compute API resolves
``imageRef`` through :meth:`stratus.image.service.ImageService.get`.
"""
