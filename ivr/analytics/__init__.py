"""Journey analytics: what the calls of a flow went through, over days and months."""
