"""Program skeletons (Jinja2) that the composer fills with plugin sections."""
