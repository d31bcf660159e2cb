"""No custom actions: the data store actions come from persisty_data."""
