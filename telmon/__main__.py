from telmon.cli import main

main()
