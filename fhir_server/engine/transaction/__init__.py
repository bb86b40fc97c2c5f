"""batch and transaction Bundles: entry parsing, ordering, identity substitution, execution."""

from fhir_server.engine.transaction.processor import process_bundle

__all__ = ["process_bundle"]
