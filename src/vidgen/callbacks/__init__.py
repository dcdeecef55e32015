"""Lightning callbacks: sample grids, generative metrics, run bookkeeping."""
