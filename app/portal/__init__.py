"""The residents' portal (issue 13): a small server-rendered web app on the station's database."""
