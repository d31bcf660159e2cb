"""The ``persisty-data`` command line tool (``persisty_data.cli.main:main``)."""
