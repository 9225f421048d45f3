from spray.cli import main

main()
