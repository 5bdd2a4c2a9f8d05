<?php
function handler($event)
{
    return $event['env']['GREETING'];
}
