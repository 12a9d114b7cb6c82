"""Networks drawn as they compute: dataflow graphs, receptive fields, models pasted as code."""
