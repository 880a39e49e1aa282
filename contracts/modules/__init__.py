"""The built-in rule modules, one small file each, and the registry mapping rule names to them."""
