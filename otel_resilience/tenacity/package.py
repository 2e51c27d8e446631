_instruments = ("tenacity >= 8.2",)
