from hostpipe.cli.main import main

main()
