from dropp.cli import main

main()
