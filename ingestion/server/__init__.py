"""What runs beside the WSGI app in gunicorn's processes and the image: the JSON bodies of
the errors gunicorn answers itself, and the container's health probe. Imports nothing of
Flask. (No HTTP framing of our own: nginx in front reads whole requests; README,
Deployment.)"""
