import sys

from lab.server.daemon import serve

sys.exit(serve(warm_ray="--warm-ray" in sys.argv[1:]))
