"""`lab ui`: a local read-only web page over the registry (`server.py`) and the TensorBoards it starts (`boards.py`)."""
