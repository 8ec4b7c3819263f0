"""Reading run directories after the fact: the run record, comparisons, reports."""
