"""xenvmmu: audit and simulate Xen virtual-MMU denial of service (XSA-97)."""

__version__ = "0.1.0"
