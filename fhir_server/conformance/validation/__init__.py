"""The profile validator's parts; the public interface is ``fhir_server.conformance.validator``."""
