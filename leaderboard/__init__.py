"""Static HTML leaderboard built from result JSONs: `leaderboard build RESULTS_DIR -o SITE_DIR`."""
