"""One module per REST interaction; the routers in ``api.routes`` only wire them."""
