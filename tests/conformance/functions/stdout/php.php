<?php
function handler($event)
{
    echo "logged\n";
    return 'ok';
}
