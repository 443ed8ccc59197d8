"""What runs leave behind: artifacts and exports, provenance, importance and reports, TensorBoard."""
