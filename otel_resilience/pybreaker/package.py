_instruments = ("pybreaker >= 1.0",)
