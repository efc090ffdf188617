"""Stage 4, checking: symbolic shape and dtype inference (`shapes`) and weight ties (`ties`)."""
