"""The libvirt/QEMU virt driver (``[compute] driver = libvirt``).

* :mod:`.driver` implements :class:`stratus.compute.virt.driver.ComputeDriver`
  on a libvirt connection (imported only when this driver is chosen);
* :mod:`.config` builds the domain XML;
* :mod:`.imagecache` keeps the images fetched from the image service, by checksum;
* :mod:`.disk` makes the guests' disks with ``qemu-img``;
* :mod:`.configdrive` writes the OpenStack config drive (ISO 9660, ``config-2``).

Only :mod:`.driver` imports the ``libvirt`` module, so the rest is usable
(and unit-tested) on hosts without libvirt-python.
"""
