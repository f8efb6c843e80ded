"""Background work: generating variations, sweeping stuck and expired orders."""
