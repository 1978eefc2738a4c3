from provtrack.cli import main

main()
