def mean(values):
    """Average of a list of numbers."""
    return sum(values) / len(values)


print(mean([]))
