from dxl.main import run

run()
