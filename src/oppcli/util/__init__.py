"""Building blocks below everything: atomic files, locks, signal handling."""
