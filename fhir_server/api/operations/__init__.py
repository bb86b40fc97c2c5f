"""One module per $operation; the logic lives in the owning subpackage."""
