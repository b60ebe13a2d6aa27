from reshoot.cli.app import main

main()
