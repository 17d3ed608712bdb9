"""What runs inside gunicorn below the WSGI app: the buffering worker and the JSON bodies
of the errors gunicorn answers itself. Imports nothing of Flask."""
