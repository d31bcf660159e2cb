"""
Data stores and factories declared in a dict or a TOML file plus environment variables
(docs/configuration.md). ``persisty_data.config.data_config.load_config`` is the entry point.
"""
