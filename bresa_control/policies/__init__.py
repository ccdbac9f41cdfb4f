"""Task policies at run time: the scripted spiral search and the trained SAC residual policy's actor."""
