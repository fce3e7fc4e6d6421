"""Package data of crsky (see crsky.resources): this folder ships inside the installed package."""
