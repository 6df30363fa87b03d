"""Built-in encapsulation plugins (importable as ``sfcframe.encaps``)."""
