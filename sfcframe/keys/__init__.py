"""Built-in key strategies (entry-point namespace ``sfcframe.keys``)."""
