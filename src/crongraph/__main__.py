from crongraph.cli import main

main()
