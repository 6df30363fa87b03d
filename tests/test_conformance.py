"""The conformance kit on the built-in plugins (sfcframe.testkit.conformance)."""
from sfcframe.testkit.conformance import conformance_suite

TestConformance = conformance_suite("sfcframe")
